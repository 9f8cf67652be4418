#!/usr/bin/env cwl-runner
# The summary of ../forest-bird as a CWL tool.
cwlVersion: v1.2
class: CommandLineTool
doc: One table and one chart of every scenario's richness.
baseCommand: python3
inputs:
  twins: Directory
  richness:
    type: File[]
    inputBinding: {position: 4}
arguments:
  - {valueFrom: $(inputs.twins.path)/summary.py, position: 1}
  - {prefix: --out, valueFrom: summary.csv, position: 2}
  - {prefix: --chart, valueFrom: summary.svg, position: 3}
outputs:
  table:
    type: File
    outputBinding: {glob: summary.csv}
  chart:
    type: File
    outputBinding: {glob: summary.svg}
