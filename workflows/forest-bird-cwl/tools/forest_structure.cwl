#!/usr/bin/env cwl-runner
# The forest-structure twin of ../forest-bird as a CWL tool: one decade from
# an initial landscape.
cwlVersion: v1.2
class: CommandLineTool
doc: One decade of stand-class dynamics under a scenario's drivers and a management regime.
requirements:
  ResourceRequirement: {coresMin: 1, ramMin: 512}
baseCommand: python3
inputs:
  twins: Directory
  drivers:
    type: File
    inputBinding: {prefix: --drivers, position: 2}
  management:
    type: string
    inputBinding: {prefix: --management, position: 3}
  year:
    type: int
    inputBinding: {prefix: --year, position: 4}
arguments:
  - {valueFrom: $(inputs.twins.path)/forest_structure.py, position: 1}
  - {prefix: --state, valueFrom: "", position: 5}
  - {prefix: --out, valueFrom: stands.csv, position: 6}
outputs:
  stands:
    type: File
    outputBinding: {glob: stands.csv}
