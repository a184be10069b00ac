"""The same Keras training with tf.distribute.MultiWorkerMirroredStrategy: one worker of several.

Started once per worker by the suite (benchmarks/mwms.py) with TF_CONFIG naming every worker's
loopback port and this worker's index. TensorFlow's idiomatic multi-worker path: the model
compiled under ``strategy.scope()`` and ``model.fit`` with a ``DatasetCreator``, so each worker
builds its own pipeline over its own shard with the per-replica batch (global batch = batch x
workers); gradients are all-reduced by the strategy's collective ops (ring over gRPC on CPU).
Same model, data and optimizer as the other loops (keras_workload.py). Worker 0 writes --out.

After ``fit``, each worker marks itself done in --done-dir and waits for the others before it
exits: TensorFlow's collectives pull data from the peer, so a worker that exited at once could
still be needed by one finishing its last all-reduce.
"""
import argparse
import os
import sys
import time

from keras_workload import StepClock, loss, model_and_optimizer, set_threads, train_dataset
from workload import Workload, write_summary

import tensorflow as tf  # noqa: E402  (after keras_workload: tf.keras must be tf_keras)

DONE_WAIT_S = 120.0


def wait_for_peers(done_dir: str, index: int, workers: int) -> None:
    open(os.path.join(done_dir, f"worker{index}.done"), "w").close()
    deadline = time.monotonic() + DONE_WAIT_S
    while len([n for n in os.listdir(done_dir) if n.endswith(".done")]) < workers:
        if time.monotonic() > deadline:
            raise SystemExit(f"worker {index}: the other workers did not finish within {DONE_WAIT_S:.0f} s")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workload", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--done-dir", required=True)
    parser.add_argument("--intra-op-threads", type=int, default=1)
    parser.add_argument("--inter-op-threads", type=int, default=1)
    args = parser.parse_args()
    work = Workload.load(args.workload)

    set_threads(args.intra_op_threads, args.inter_op_threads)
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    resolver = strategy.cluster_resolver
    index, workers = resolver.task_id, strategy.num_replicas_in_sync
    tf.keras.utils.set_random_seed(work.seed)
    data = work.data()
    with strategy.scope():
        model, optimizer = model_and_optimizer(work, data, workers)
        model.compile(optimizer=optimizer, loss=loss(), metrics=["accuracy"])
    global_batch = work.batch_size * workers

    def dataset_fn(ctx: tf.distribute.InputContext) -> tf.data.Dataset:
        return train_dataset(data, work, ctx.num_input_pipelines, ctx.input_pipeline_id,
                             ctx.get_per_replica_batch_size(global_batch))

    clock = StepClock()
    history = model.fit(tf.keras.utils.experimental.DatasetCreator(dataset_fn), steps_per_epoch=work.steps,
                        epochs=1, verbose=0, callbacks=[clock])
    end = time.time()
    if index == 0:
        write_summary(args.out, work.steps * global_batch, clock.first_step, end, workers,
                      {"loss": float(history.history["loss"][-1]), "path": "model.fit + DatasetCreator",
                       **clock.extra(work, global_batch)})
    wait_for_peers(args.done_dir, index, workers)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # all is written and every peer is done; skip TensorFlow's slow runtime teardown


if __name__ == "__main__":
    main()
