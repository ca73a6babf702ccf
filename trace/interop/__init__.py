"""Interoperability: GS1 identifiers and Digital Link, EPCIS 2.0, CBV event hashes, FSMA 204."""
