"""Check-can-fail tests for chapter 08's exercise checks."""

import torch
from checks_harness import CheckCase, make_tests

from llmlab import interpret
from llmlab.checks import ch08


def lens_logits(model, stream, layer):
    return model.lm_head(model.model.norm(stream[layer]))


def lens_without_norm(model, stream, layer):
    return model.lm_head(stream[layer])


def lens_off_by_one(model, stream, layer):
    return model.lm_head(model.model.norm(stream[layer - 1]))       # treats stream[0] as layer 1's output


def lens_norm_without_weight(model, stream, layer):
    h = stream[layer]
    return model.lm_head(h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-5))


def lens_probabilities(model, stream, layer):
    return model.lm_head(model.model.norm(stream[layer])).softmax(-1)


def lens_last_position_only(model, stream, layer):
    return model.lm_head(model.model.norm(stream[layer]))[:, -1]


def gradient_x_input(fn, x):
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(fn(x[None]).sum(), x)
    return grad * x


def gradient_only(fn, x):
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(fn(x[None]).sum(), x)
    return grad


def gradient_x_input_summed(fn, x):
    return gradient_x_input(fn, x).sum(-1)                          # per token, not per element


def gradient_x_abs_input(fn, x):
    return gradient_only(fn, x) * x.abs()


def input_only(fn, x):
    return x


def ablate_head(x, head, head_dim):
    out = x.clone()
    out[..., head * head_dim:(head + 1) * head_dim] = 0
    return out


def ablate_in_place(x, head, head_dim):
    x[..., head * head_dim:(head + 1) * head_dim] = 0
    return x


def ablate_off_by_one(x, head, head_dim):
    out = x.clone()
    out[..., head * head_dim + 1:(head + 1) * head_dim + 1] = 0
    return out


def ablate_interleaved(x, head, head_dim):
    out = x.clone()
    heads = x.shape[-1] // head_dim
    out.view(*x.shape[:-1], head_dim, heads)[..., head] = 0           # (head_dim, heads): the wrong layout
    return out


def ablate_position(x, head, head_dim):
    out = x.clone()
    out[:, head] = 0                                                  # zeroes a sequence position, not a head
    return out


def integrated_gradients(fn, x, baseline, steps):
    return interpret.integrated_gradients(fn, x, baseline, steps=steps)


def _mean_grad(fn, x, baseline, alphas):
    total = torch.zeros_like(x)
    for a in alphas:
        point = (baseline + a * (x - baseline)).requires_grad_(True)
        (grad,) = torch.autograd.grad(fn(point[None]).sum(), point)
        total += grad
    return total / len(alphas)


def ig_without_difference(fn, x, baseline, steps):
    return _mean_grad(fn, x, baseline, [(k + 0.5) / steps for k in range(steps)])


def ig_with_endpoints(fn, x, baseline, steps):
    return (x - baseline) * _mean_grad(fn, x, baseline, torch.linspace(0, 1, steps).tolist())


def ig_right_riemann(fn, x, baseline, steps):
    return (x - baseline) * _mean_grad(fn, x, baseline, [(k + 1) / steps for k in range(steps)])


def ig_from_zero(fn, x, baseline, steps):
    zero = torch.zeros_like(x)
    return x * _mean_grad(fn, x, zero, [(k + 0.5) / steps for k in range(steps)])


def ig_summed_not_averaged(fn, x, baseline, steps):
    return steps * (x - baseline) * _mean_grad(fn, x, baseline, [(k + 0.5) / steps for k in range(steps)])


def probe_accuracy(features, labels, train, test):
    y = torch.tensor(labels)
    probe = interpret.train_probe(features[train], y[train], 2)
    return interpret.accuracy(probe, features[test], y[test])


def probe_trained_on_everything(features, labels, train, test):
    y = torch.tensor(labels)
    rows = train + test                                             # the test rows leak into training
    probe = interpret.train_probe(features[rows], y[rows], 2, steps=300)
    return interpret.accuracy(probe, features[test], y[test])


def probe_training_accuracy(features, labels, train, test):
    y = torch.tensor(labels)
    probe = interpret.train_probe(features[train], y[train], 2)
    return interpret.accuracy(probe, features[train], y[train])


def probe_returns_tensor(features, labels, train, test):
    y = torch.tensor(labels)
    probe = interpret.train_probe(features[train], y[train], 2)
    return (probe.predict(features[test]) == y[test]).float().mean()


def probe_counts_correct(features, labels, train, test):
    y = torch.tensor(labels)
    probe = interpret.train_probe(features[train], y[train], 2)
    return float((probe.predict(features[test]) == y[test]).sum())


CASES = [
    CheckCase(ch08.check_lens_logits, lens_logits,
              [lens_without_norm, lens_off_by_one, lens_norm_without_weight, lens_probabilities,
               lens_last_position_only]),
    CheckCase(ch08.check_gradient_x_input, gradient_x_input,
              [gradient_only, gradient_x_input_summed, gradient_x_abs_input, input_only]),
    CheckCase(ch08.check_ablate_head, ablate_head,
              [ablate_in_place, ablate_off_by_one, ablate_interleaved, ablate_position]),
    CheckCase(ch08.check_integrated_gradients, integrated_gradients,
              [ig_without_difference, ig_with_endpoints, ig_right_riemann, ig_from_zero, ig_summed_not_averaged]),
    CheckCase(ch08.check_probe_accuracy, probe_accuracy,
              [probe_trained_on_everything, probe_training_accuracy, probe_returns_tensor, probe_counts_correct]),
]

test_check_passes_on_solution, test_check_fails_on_stub, test_check_fails_on_wrong_answer = make_tests(CASES)
