"""Kie's model catalog: model files, their prices, OpenAPI conversion and `run-pipeline models`.

`pipeline.models` is the API the rest of the product reads (Model, ModelRegistry); the modules
here are its parts: `pricing` (price rules), `openapi` (Kie's documents -> model files),
`fetch` (catalog calls under one budget), `pull` (writing kie-models/) and `command` (the CLI).
Nothing here imports the CLI or the runner.
"""
