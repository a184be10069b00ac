"""A plain Horovod tf.keras training script: no hvdjob imports, written for tf.keras (Keras 2).

Under TensorFlow >= 2.16 it needs tf_keras in place of Keras 3 (``TF_USE_LEGACY_KERAS=1`` and
``keras`` resolving to ``tf_keras``); hvdjob's worker sets both up before the script starts.
"""
import argparse

import horovod.tensorflow.keras as hvd
import tensorflow as tf
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=42)
    return parser.parse_args()


def main():
    args = parse_args()
    hvd.init()
    tf.keras.utils.set_random_seed(args.seed)

    x, y = load_digits(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(x / 16.0, y, test_size=0.2, random_state=args.seed)
    train = (tf.data.Dataset.from_tensor_slices((x_train, y_train)).shard(hvd.size(), hvd.rank())
             .shuffle(2048, seed=args.seed).batch(args.batch_size))
    val = tf.data.Dataset.from_tensor_slices((x_val, y_val)).shard(hvd.size(), hvd.rank()).batch(256)

    model = tf.keras.Sequential([
        tf.keras.layers.Input(shape=(64,)),
        tf.keras.layers.Dense(64, activation="relu"),
        tf.keras.layers.Dense(10),
    ])
    optimizer = hvd.DistributedOptimizer(tf.keras.optimizers.SGD(learning_rate=args.lr * hvd.size(), momentum=0.9))
    model.compile(optimizer=optimizer,
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    callbacks = [
        hvd.callbacks.BroadcastGlobalVariablesCallback(0),
        hvd.callbacks.MetricAverageCallback(),
        # momentum_correction needs a legacy optimizer; Keras 2.11+ SGD keeps momentum as a float.
        hvd.callbacks.LearningRateWarmupCallback(initial_lr=args.lr * hvd.size(), warmup_epochs=1,
                                                 momentum_correction=False, verbose=0),
    ]
    # Shards differ by at most one batch; the shortest shard sets the step count so no rank waits.
    steps = len(x_train) // hvd.size() // args.batch_size
    history = model.fit(train.repeat(), epochs=args.epochs, steps_per_epoch=steps, validation_data=val,
                        callbacks=callbacks, verbose=0)
    if hvd.rank() == 0:
        for epoch, (loss, acc) in enumerate(zip(history.history["loss"], history.history["val_accuracy"])):
            print(f"epoch {epoch + 1}: train loss {loss:.4f} val accuracy {acc:.4f}", flush=True)


if __name__ == "__main__":
    main()
