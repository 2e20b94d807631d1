"""After-sales intelligence: buyer credit, merchant quality, product-defect signal, refund policy.

Import the module you need (``tianping.aftersales.credit``, ``.merchant``, ``.defect``, ...);
this package imports nothing heavy on its own.
"""
