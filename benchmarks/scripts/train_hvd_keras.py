"""A hand-written Horovod Keras loop: what a user writes without hvdjob's managed mode.

The shape of Horovod's own Keras examples: ``hvd.init()``, ``DistributedOptimizer``, one
``model.fit`` over the steps with ``BroadcastGlobalVariablesCallback``; no checkpoints, metric
averaging or stop checks. Same model, data, per-rank batch and optimizer as the managed job
(keras_workload.py). Thread pools come from hvdjob's rank environment, as for any script. Rank 0
writes summary.json (to --out, or into $HVDJOB_RUN_DIR when run by hvdjob).
"""
import argparse
import os
import time

import horovod.tensorflow.keras as hvd
import tensorflow as tf

from keras_workload import StepClock, loss, model_and_optimizer, train_dataset
from workload import Workload, write_summary


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workload", required=True)
    parser.add_argument("--out", default=os.path.join(os.environ.get("HVDJOB_RUN_DIR", "."), "summary.json"))
    args = parser.parse_args()
    work = Workload.load(args.workload)

    hvd.init()
    tf.keras.utils.set_random_seed(work.seed)
    data = work.data()
    model, optimizer = model_and_optimizer(work, data, hvd.size())
    model.compile(optimizer=hvd.DistributedOptimizer(optimizer), loss=loss(), metrics=["accuracy"])
    clock = StepClock()
    history = model.fit(train_dataset(data, work, hvd.size(), hvd.rank(), work.batch_size),
                        steps_per_epoch=work.steps, epochs=1, verbose=0,
                        callbacks=[hvd.callbacks.BroadcastGlobalVariablesCallback(0), clock])
    end = time.time()
    # In the rank's log: whether a slow first step is this rank's own or a wait for a peer.
    print(f"rank {hvd.rank()}: first step began {clock.first_step:.3f}, "
          f"first steps took {clock.extra(work, 1)['first_steps_s']} s", flush=True)
    if hvd.rank() == 0:
        per_step = work.batch_size * hvd.size()
        write_summary(args.out, work.steps * per_step, clock.first_step, end, hvd.size(),
                      {"loss": float(history.history["loss"][-1]), **clock.extra(work, per_step)})


if __name__ == "__main__":
    main()
