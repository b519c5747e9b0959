"""Optimisers for pretraining: GB's learning-rate schedule, AdamW and LAMB, fp16 loss scaling.

google-research/bert (GB) `optimization.py`: the learning rate rises linearly from 0 to
`learning_rate` over `num_warmup_steps`, and is otherwise `learning_rate * (1 - step /
num_train_steps)` (polynomial decay of power 1 to 0); AdamW with decoupled weight decay
that skips LayerNorm parameters and biases; beta_1=0.9, beta_2=0.999, epsilon=1e-6.

The optimisers here expect gradients that the training loop has ALREADY summed over
replicas: the loop all-reduces once, clips by the global norm of the reduced gradient
(clipping per replica before the reduction, as Keras' own `global_clipnorm` does under
tf.distribute, clips the wrong vector), then calls `apply`. Keras' TF optimiser would
all-reduce a second time; `_PreReducedGradients` turns that off.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import keras
from keras import ops

OPTIMIZERS = ("adamw", "lamb")


@keras.saving.register_keras_serializable(package="bert_keras")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """GB's schedule: linear warmup to `learning_rate`, then linear decay to 0.

    lr(step) = learning_rate * step / num_warmup_steps          if step < num_warmup_steps
             = learning_rate * max(0, 1 - step / num_train_steps) otherwise.

    The decay is measured from step 0, not from the end of the warmup, as in GB.
    """

    def __init__(self, learning_rate, num_train_steps, num_warmup_steps=0):
        if num_train_steps <= 0:
            raise ValueError(f"--num_train_steps must be positive, got {num_train_steps}.")
        if not 0 <= num_warmup_steps <= num_train_steps:
            raise ValueError(
                f"--num_warmup_steps={num_warmup_steps} must be in [0, --num_train_steps="
                f"{num_train_steps}]."
            )
        self.learning_rate = learning_rate
        self.num_train_steps = num_train_steps
        self.num_warmup_steps = num_warmup_steps

    def __call__(self, step):
        step = ops.cast(step, "float32")
        decayed = self.learning_rate * ops.maximum(0.0, 1.0 - step / self.num_train_steps)
        if not self.num_warmup_steps:
            return decayed
        warmup = self.learning_rate * step / self.num_warmup_steps
        return ops.where(step < self.num_warmup_steps, warmup, decayed)

    def get_config(self):
        return {
            "learning_rate": self.learning_rate,
            "num_train_steps": self.num_train_steps,
            "num_warmup_steps": self.num_warmup_steps,
        }


class _PreReducedGradients:
    """Mixin: `apply` receives gradients already all-reduced by the training loop."""

    def _all_reduce_sum_gradients(self, grads_and_vars):
        return list(grads_and_vars)


@keras.saving.register_keras_serializable(package="bert_keras")
class BertAdamW(_PreReducedGradients, keras.optimizers.AdamW):
    """Keras' AdamW (decoupled weight decay `w -= lr * weight_decay * w`, as GB's
    `AdamWeightDecayOptimizer`), fed with pre-reduced gradients.

    Unlike GB, Adam's moments are bias-corrected (Keras' Adam; Model Garden's AdamW too),
    which only changes the first few hundred steps, when the warmup keeps them small anyway.
    """


@keras.saving.register_keras_serializable(package="bert_keras")
class BertLamb(_PreReducedGradients, keras.optimizers.Lamb):
    """LAMB (You et al. 2019) as Model Garden's `LAMB`: the weight decay is part of the
    update whose norm the trust ratio sees, and excluded variables get neither decay nor
    layer adaptation.

    Keras' own `Lamb` applies the trust ratio to every variable (LayerNorm and biases too)
    and its `weight_decay` outside the ratio, so it differs from the published algorithm;
    `update_step` is redefined here, the moments and config are Keras'.
    """

    def _apply_weight_decay(self, variables):
        # The decay is added to the update inside `update_step` instead.
        return

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        local_step = ops.cast(self.iterations + 1, variable.dtype)
        beta_1_power = ops.power(ops.cast(self.beta_1, variable.dtype), local_step)
        beta_2_power = ops.power(ops.cast(self.beta_2, variable.dtype), local_step)

        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - self.beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - self.beta_2))
        m_hat = ops.divide(m, 1.0 - beta_1_power)
        v_hat = ops.divide(v, 1.0 - beta_2_power)
        update = ops.divide(m_hat, ops.add(ops.sqrt(v_hat), self.epsilon))

        if self._use_weight_decay(variable):
            if self.weight_decay:
                decay = ops.cast(self.weight_decay, variable.dtype)
                update = ops.add(update, ops.multiply(decay, variable))
            w_norm = ops.sqrt(ops.sum(ops.square(variable)))
            u_norm = ops.sqrt(ops.sum(ops.square(update)))
            ratio = ops.where(
                ops.greater(w_norm, 0),
                ops.where(ops.greater(u_norm, 0), w_norm / u_norm, 1.0),
                1.0,
            )
            update = ops.multiply(ratio, update)
        self.assign_sub(variable, ops.multiply(lr, update))


_NO_DECAY = re.compile(r"bias|layer_norm|LayerNorm")


def no_decay_variables(variables: Sequence) -> list:
    """LayerNorm parameters and biases, which GB exempts from weight decay by name
    ("LayerNorm", "layer_norm", "bias"); matched on the Keras variable path
    (`transformer_layer_0/self_attention_layer_norm/gamma`, `.../query/bias`)."""
    return [v for v in variables if _NO_DECAY.search(getattr(v, "path", v.name))]


def create_optimizer(
    name: str,
    schedule: keras.optimizers.schedules.LearningRateSchedule,
    trainable_variables: Sequence,
    *,
    weight_decay: float = 0.01,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-6,
    loss_scaling: bool = False,
) -> keras.optimizers.Optimizer:
    """Builds (creates the slot variables of) the optimiser for `trainable_variables`.

    Call it inside `strategy.scope()`. With `loss_scaling` (fp16) the optimiser is wrapped
    in `keras.optimizers.LossScaleOptimizer` (dynamic scale, steps with non-finite
    gradients are skipped).
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"--optimizer={name!r}; choose one of {OPTIMIZERS}.")
    cls = BertAdamW if name == "adamw" else BertLamb
    optimizer = cls(
        learning_rate=schedule,
        weight_decay=weight_decay or None,
        beta_1=beta_1,
        beta_2=beta_2,
        epsilon=epsilon,
    )
    excluded = no_decay_variables(trainable_variables)
    if excluded:
        optimizer.exclude_from_weight_decay(var_list=excluded)
    if loss_scaling:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    optimizer.build(list(trainable_variables))
    return optimizer


def inner_optimizer(optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
    """The optimiser that owns the schedule and moments (unwraps LossScaleOptimizer)."""
    return getattr(optimizer, "inner_optimizer", optimizer)
