"""Plotting (``mv.pl``): matplotlib figures that read what ``mv.tl`` wrote."""

# sbnn / srrr (issue 3) ---------------------------------------------------------------
# coupled autoencoders (issue 4) ------------------------------------------------------
# sivae (issue 5) ---------------------------------------------------------------------
