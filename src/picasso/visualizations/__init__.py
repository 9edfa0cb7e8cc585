"""Built-in visualizations. They are registered through the ``picasso.methods``
entry-point group, exactly like third-party plugins."""
