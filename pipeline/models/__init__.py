"""Models are data: Kie's model files, their lookup, their prices, and Kie's documents read.

- `registry`: `Model` and `ModelRegistry`, the API the rest of the product reads (a manifest's
  models looked up in `kie-models/` folders, nearest first, then in the bundled catalog);
- `pricing`: price rules (what one task of a model costs, from its input);
- `openapi`: Kie's OpenAPI documents -> model files (pure functions);
- `pull`: the catalog calls under their one-per-second budget, and writing `kie-models/`.
The `models` command itself is `pipeline.commands.models`.
"""
