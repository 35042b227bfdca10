"""Train a sequence-embedding model: ``python train.py model=transformer distance=hyperbolic``."""

import hydra
from omegaconf import DictConfig

from neurohash.errors import reported


@hydra.main(config_path="conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float:
    from neurohash.train import train

    with reported("train.py"):
        metrics = train(cfg)
    return metrics.get(cfg.optimized_metric, float("nan"))


if __name__ == "__main__":
    main()
