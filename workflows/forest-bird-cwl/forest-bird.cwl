#!/usr/bin/env cwl-runner
# ../forest-bird's twins as a CWL workflow, for one decade and one management
# regime: climate drivers per scenario -> forest structure -> bird
# biodiversity, then one summary. twinflow runs each scenario's chain as its
# own tasks (the scatters are aligned), e.g.
#   twinflow run workflows/forest-bird-cwl/forest-bird.cwl workflows/forest-bird-cwl/job.json
cwlVersion: v1.2
class: Workflow
doc: Climate scenarios drive forest structure, which drives forest-bird biodiversity.
requirements:
  ScatterFeatureRequirement: {}
  StepInputExpressionRequirement: {}
inputs:
  twins:
    type: Directory
    default: {class: Directory, location: ../forest-bird/twins}
  region: {type: string, default: south-finland}
  climate: string[]
  management: {type: string, default: business-as-usual}
  year: {type: int, default: 2020}
outputs:
  table:
    type: File
    outputSource: summary/table
  chart:
    type: File
    outputSource: summary/chart
steps:
  climate-ingest:
    run: tools/climate_ingest.cwl
    scatter: scenario
    in: {twins: twins, scenario: climate, region: region}
    out: [drivers]
  forest-structure:
    run: tools/forest_structure.cwl
    scatter: drivers
    in: {twins: twins, drivers: climate-ingest/drivers, management: management, year: year}
    out: [stands]
  bird-biodiversity:
    run: tools/bird_biodiversity.cwl
    scatter: stands
    in: {twins: twins, stands: forest-structure/stands}
    out: [richness]
  summary:
    run: tools/summary.cwl
    in: {twins: twins, richness: bird-biodiversity/richness}
    out: [table, chart]
