"""Tools (``mv.tl``): validate, fit a model, write results into the AnnData/MuData."""

# sbnn / srrr (issue 3) ---------------------------------------------------------------
# coupled autoencoders (issue 4) ------------------------------------------------------
# sivae (issue 5) ---------------------------------------------------------------------
