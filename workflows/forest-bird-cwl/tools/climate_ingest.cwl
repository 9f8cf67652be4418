#!/usr/bin/env cwl-runner
# The climate-ingest twin of ../forest-bird as a CWL tool.
cwlVersion: v1.2
class: CommandLineTool
doc: Annual climate drivers of one scenario for one region.
baseCommand: python3
inputs:
  twins:
    type: Directory
    doc: the twins' code (../forest-bird/twins)
  scenario:
    type: string
    inputBinding: {prefix: --scenario, position: 2}
  region:
    type: string
    inputBinding: {prefix: --region, position: 3}
arguments:
  - {valueFrom: $(inputs.twins.path)/climate_ingest.py, position: 1}
  - {prefix: --out, valueFrom: drivers.csv, position: 4}
outputs:
  drivers:
    type: File
    outputBinding: {glob: drivers.csv}
