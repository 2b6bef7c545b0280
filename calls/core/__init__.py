"""Django-free leaf types every layer may import: the phone audio codec and the persona snapshot."""
