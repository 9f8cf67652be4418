#!/usr/bin/env cwl-runner
# The bird-biodiversity twin of ../forest-bird as a CWL tool.
cwlVersion: v1.2
class: CommandLineTool
doc: Forest-bird species richness from stand classes.
baseCommand: python3
inputs:
  twins: Directory
  stands:
    type: File
    inputBinding: {prefix: --stands, position: 2}
arguments:
  - {valueFrom: $(inputs.twins.path)/bird_biodiversity.py, position: 1}
  - {prefix: --out, valueFrom: richness.csv, position: 3}
outputs:
  richness:
    type: File
    outputBinding: {glob: richness.csv}
