"""Proof that Horovod's TensorFlow extension works: allreduce and one DistributedGradientTape step."""
import hashlib
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import horovod.tensorflow as hvd
import tensorflow as tf

hvd.init()
summed = hvd.allreduce(tf.constant([float(hvd.rank() + 1), 10.0]), op=hvd.Sum).numpy().tolist()
tf.random.set_seed(100 + hvd.rank())
w = tf.Variable(tf.random.normal((3, 1)))
b = tf.Variable(tf.zeros((1,)))
hvd.broadcast_variables([w, b], root_rank=0)
x = tf.fill((4, 3), float(hvd.rank() + 1))
with tf.GradientTape() as tape:
    loss = tf.reduce_sum(tf.matmul(x, w) + b)
tape = hvd.DistributedGradientTape(tape)
grads = tape.gradient(loss, [w, b])
for var, grad in zip([w, b], grads):
    var.assign_sub(0.5 * grad)
weights = tf.concat([tf.reshape(w, [-1]), b], 0).numpy()
print(json.dumps({
    "rank": hvd.rank(), "size": hvd.size(), "sum": summed,
    "weights": hashlib.sha256(weights.tobytes()).hexdigest(),
    "grad_w": grads[0].numpy().tolist(),
}), flush=True)
