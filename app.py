"""Open the GAN-CLS app: `python app.py` (see `python app.py --help`); also the Hugging Face Space entry point."""

from demo.main import main

if __name__ == "__main__":
    main()
