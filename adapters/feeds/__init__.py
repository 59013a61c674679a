"""Feed adapters: readers and generators of SKU Genie feed files (see FEED.md)."""
