"""consult: self-hosted video consultations for nail and beauty salons."""

__version__ = "0.1.0"
