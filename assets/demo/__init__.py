"""The demo's data files (organisation.json, layout.toml), installed as groupwarden.demo_assets."""
