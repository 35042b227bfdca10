"""Hash shards of FASTA/FASTQ: ``python predict.py ckpt_path=CKPT input=FA output_dir=DIR``."""

import hydra
from omegaconf import DictConfig

from neurohash.errors import reported


@hydra.main(config_path="conf", config_name="predict", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from neurohash.predict import predict

    with reported("predict.py"):
        predict(cfg)


if __name__ == "__main__":
    main()
