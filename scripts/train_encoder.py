"""Train the style encoder S for a checkpoint's G and write it into that checkpoint.

    python -m scripts.train_encoder --checkpoint checkpoints/pretrained --data-dir ../shared/data

G, D and everything else in the file stay bit for bit as they were (gancls.checkpoint.add_encoder);
rerun this after retraining G, since an S saved for another G is not loaded.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch


from gancls.checkpoint import add_encoder, load_checkpoint
from gancls.data import load_mnist
from gancls.encoder import EncoderTrainConfig, latent_error, train_encoder
from gancls.errors import UserError


def main(argv: list[str] | None = None) -> int:
    defaults = EncoderTrainConfig()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default="checkpoints/pretrained", help="run directory or checkpoint file to add S to")
    p.add_argument("--data-dir", default=None, help="MNIST for the pixel term's real digits (default: the embedded subset)")
    p.add_argument("--steps", type=int, default=defaults.steps, help=f"training steps (default {defaults.steps})")
    p.add_argument("--recon-weight", type=float, default=defaults.recon_weight,
                   help=f"pixel-term weight, 0 = latent loss only (default {defaults.recon_weight:g})")
    p.add_argument("--seed", type=int, default=defaults.seed, help="seed for S's initialisation and samples")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    a = p.parse_args(argv)
    try:
        torch.set_num_threads(a.threads)
        ckpt = load_checkpoint(a.checkpoint)
        cfg = EncoderTrainConfig(steps=a.steps, recon_weight=a.recon_weight, seed=a.seed)
        real, source = None, "the embedded subset"
        if a.data_dir is not None and cfg.recon_weight > 0:
            data = load_mnist(a.data_dir, allow_download=False)
            real, source = (data.train_images, data.train_labels), data.description
        t0 = time.perf_counter()
        encoder = train_encoder(ckpt.model, cfg, real=real)
        seconds = time.perf_counter() - t0
        encoder.info.update(real_digits=source if cfg.recon_weight > 0 else None,
                            latent_mse_on_G_samples=round(latent_error(ckpt.model, encoder), 5),
                            how_trained="python -m scripts.train_encoder " + " ".join(sys.argv[1:] if argv is None else argv),
                            device=f"CPU ({a.threads} thread{'s' if a.threads != 1 else ''})")
        path = add_encoder(ckpt.path, encoder)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"trained S in {seconds:.1f} s ({encoder.info['steps_done']} steps, latent MSE on G's samples "
          f"{encoder.info['latent_mse_on_G_samples']}); wrote it into {path} ({path.stat().st_size / 2**20:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
