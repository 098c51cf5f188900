"""Launched by torchrun from test_distributed.py: trains the toy task (or the toy GAN) and writes its losses."""
import sys

from tests.training.toy import make_gan_trainer, make_trainer, mse

if __name__ == "__main__":
    if sys.argv[2:] == ["gan"]:
        make_gan_trainer(sys.argv[1]).fit()
    else:
        make_trainer(sys.argv[1], loss_fn=mse, dropout=0.0).fit()
