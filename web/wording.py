"""What the consumer page calls the ledger's codes (event kinds, units, alert rules …), in the
reader's language.

The strings are lazy: each is translated when the page prints it, so a page pays only for the
words it shows. (``lazy_gettext`` is imported as ``_`` so that ``pybabel extract`` finds the
messages with its default keywords.)
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _

KINDS = {
    "planting": _("Planting"), "input_application": _("Input applied"), "harvest": _("Harvest"),
    "cooling": _("Pre-cooling"), "test": _("Test"), "certificate": _("Compliance certificate"),
    "packing": _("Packing"), "storing": _("Storage"), "shipping": _("Shipped"),
    "transport": _("Transport temperatures"), "receiving": _("Received"),
    "transformation": _("Processing"), "sale": _("Sold"), "sales": _("Sales"),
    "recall": _("Recall"), "note": _("Note"), "correction": _("Correction"),
}
UNITS = {"KGM": _("kg"), "GRM": _("g"), "TNE": _("t"), "LTR": _("L"), "H87": _("pieces"),
         "XBX": _("boxes"), "XCT": _("cartons"), "XPK": _("packages"), "XCR": _("crates")}
UNITS_ONE = {"H87": _("piece"), "XBX": _("box"), "XCT": _("carton"), "XPK": _("package"),
             "XCR": _("crate")}
"""Counted units when the quantity is exactly 1."""
PROCESSES = {"split": _("split"), "merge": _("merged"), "process": _("processed")}
CHANNELS = {"retail": _("in a shop"), "ecommerce": _("online"), "wholesale": _("wholesale")}
BASES = {"quality_control": _("internal quality control"), "self_test": _("self-test passed"),
         "commissioned_test": _("commissioned test passed")}
INPUTS = {"pesticide": _("pesticide"), "fertiliser": _("fertiliser"),
          "veterinary_drug": _("veterinary drug"), "feed": _("feed")}
ALERTS = {
    "pesticide_interval": _("The harvest came sooner after a pesticide application than the "
                            "safety interval allows."),
    "residue_limit": _("A residue test result was above the legal limit."),
    "cold_chain": _("The temperature went above the limit during cooling, storage or "
                    "transport."),
    "cold_chain_gap": _("Temperature readings stopped for longer than allowed during storage "
                        "or transport."),
    "yield": _("A processor's declared yield was outside the expected range (a record-keeping "
               "irregularity)."),
    "serial_sold_twice": _("A unit code of this product was recorded as sold more than once: "
                           "copied codes may exist."),
    "sale_after_recall": _("Some units were sold after the recall."),
    "recalled_lot_moved": _("Recalled goods were moved after the recall."),
}
"""Alert rules phrased for consumers; any other rule gets :data:`OTHER_ALERT`."""
OTHER_ALERT = _("A record of this product was flagged for the regulator's review.")
