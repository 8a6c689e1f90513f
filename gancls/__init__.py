"""gancls: GAN-CLS (Reed et al. 2016) with a matching-aware discriminator, on handwritten digits."""

__version__ = "0.1.0"
