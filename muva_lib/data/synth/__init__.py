"""Implementation of the synthetic benchmark; import it through :mod:`muva_lib.data.synthetic`."""
