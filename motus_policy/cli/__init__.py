"""Command-line programs (the top layer): demo, training, VAE training, evaluation."""
