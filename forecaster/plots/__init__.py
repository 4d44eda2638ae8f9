"""Figures (matplotlib, Agg): never ``plt.show()``; the caller saves and closes them."""
