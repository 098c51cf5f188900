"""Launched by torchrun from test_distributed.py: trains the toy task and writes its losses."""
import sys

from tests.training.toy import make_trainer, mse

if __name__ == "__main__":
    make_trainer(sys.argv[1], loss_fn=mse, dropout=0.0).fit()
