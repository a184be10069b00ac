"""A Horovod Keras training script as users write it (tf.keras, horovod.tensorflow.keras), nothing from hvdjob.

Each rank prints a checksum of its final weights, so a test can see that the ranks agree.
"""
import argparse

import horovod.tensorflow.keras as hvd
import numpy as np
import tensorflow as tf


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()

    hvd.init()
    rng = np.random.default_rng(1234 + hvd.rank())  # different data per rank
    x = rng.normal(size=(256, 16)).astype("float32")
    y = (x.sum(axis=1) > 0).astype("int64")
    tf.keras.utils.set_random_seed(1234 + hvd.rank())  # different initial weights: the broadcast must fix them
    model = tf.keras.Sequential([tf.keras.layers.Input(shape=(16,)), tf.keras.layers.Dense(32, activation="relu"),
                                 tf.keras.layers.Dense(2)])
    model.compile(optimizer=hvd.DistributedOptimizer(tf.keras.optimizers.SGD(learning_rate=0.1 * hvd.size())),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(x, y, batch_size=32, epochs=args.epochs, verbose=0,
                        callbacks=[hvd.callbacks.BroadcastGlobalVariablesCallback(0)])
    checksum = float(sum(np.asarray(w, dtype="float64").sum() for w in model.get_weights()))
    print(f"rank {hvd.rank()} of {hvd.size()}: epochs {args.epochs} loss {history.history['loss'][-1]:.4f} "
          f"checksum {checksum!r}", flush=True)


if __name__ == "__main__":
    main()
