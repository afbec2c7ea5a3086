"""tapefit's physics layer: parameters, pdfs and likelihoods recorded on the tape.

For now it holds the tutorial model that ``tapefit demo`` fits (``models.tutorial``); the pdf
classes of the models issue will live beside it.
"""
