"""Django-free leaves every layer may import: the phone audio codec, the persona snapshot, the
library patches and the startup-heap freeze."""
