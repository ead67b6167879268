"""Check-can-fail tests for chapter 08's exercise checks."""

import numpy as np
import pytest
import torch
from checks_harness import CheckCase, make_tests

from llmlab import interpret
from llmlab.checks import CheckFailed, ch08


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


def lens_log_probabilities(model, stream, layer):
    return model.lm_head(model.model.norm(stream[layer])).log_softmax(-1)


def lens_first_row_only(model, stream, layer):
    return model.lm_head(model.model.norm(stream[layer][:1]))        # keeps batch row 0 only


def lens_norm_over_sequence(model, stream, layer):
    h = stream[layer]
    return model.lm_head(model.model.norm.weight * h * torch.rsqrt(h.pow(2).mean(-2, keepdim=True) + 1e-5))


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


def gradient_x_input_abs(fn, x):
    return gradient_x_input(fn, x).abs()                            # a saliency magnitude, not the signed product


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


def ablate_to_the_end(x, head, head_dim):
    out = x.clone()
    out[..., head * head_dim:] = 0                                    # also zeroes every later head
    return out


def ablate_head_as_length(x, head, head_dim):
    out = x.clone()
    out[..., head * head_dim:head * head_dim + head] = 0              # slice length `head`, not head_dim
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


def ig_left_riemann(fn, x, baseline, steps):
    return (x - baseline) * _mean_grad(fn, x, baseline, [k / steps for k in range(steps)])


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


def probe_first_rows_are_training(features, labels, train, test):
    y = torch.tensor(labels)
    k = len(train)                                                  # assumes rows 0..k-1 are the training rows
    probe = interpret.train_probe(features[:k], y[:k], 2)
    return interpret.accuracy(probe, features[k:], y[k:])


def probe_standardised_with_all_rows(features, labels, train, test):
    y = torch.tensor(labels)
    mean, std = features.mean(0), features.std(0) + 1e-6            # the test rows leak into the standardisation
    torch.manual_seed(0)
    probe = interpret.LinearProbe(mean=mean, std=std, linear=torch.nn.Linear(features.shape[1], 2))
    opt = torch.optim.Adam(probe.linear.parameters(), lr=0.05, weight_decay=1e-2)
    for _ in range(100):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(probe.logits(features[train]), y[train]).backward()
        opt.step()
    return interpret.accuracy(probe, features[test], y[test])


def probe_sklearn_scaler_on_all_rows(features, labels, train, test):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    z, y = StandardScaler().fit_transform(features.numpy()), np.array(labels)   # fit on every row: a leak
    model = LogisticRegression().fit(z[train], y[train])
    return float((model.predict(z[test]) == y[test]).mean())


def probe_sklearn(features, labels, train, test):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    x, y = features.numpy(), np.array(labels)
    scaler = StandardScaler().fit(x[train])
    model = LogisticRegression().fit(scaler.transform(x[train]), y[train])
    return float((model.predict(scaler.transform(x[test])) == y[test]).mean())


def probe_standardised_with_all_rows_then_train_probe(features, labels, train, test):
    z = (features - features.mean(0)) / features.std(0)            # harmless: train_probe re-standardises on train
    return probe_accuracy(z, labels, train, test)


CASES = [
    CheckCase(ch08.check_lens_logits, lens_logits,
              [lens_without_norm, lens_off_by_one, lens_norm_without_weight, lens_probabilities,
               lens_last_position_only, lens_log_probabilities, lens_first_row_only, lens_norm_over_sequence]),
    CheckCase(ch08.check_gradient_x_input, gradient_x_input,
              [gradient_only, gradient_x_input_summed, gradient_x_abs_input, input_only, gradient_x_input_abs]),
    CheckCase(ch08.check_ablate_head, ablate_head,
              [ablate_in_place, ablate_off_by_one, ablate_interleaved, ablate_position, ablate_to_the_end,
               ablate_head_as_length]),
    CheckCase(ch08.check_integrated_gradients, integrated_gradients,
              [ig_without_difference, ig_with_endpoints, ig_right_riemann, ig_from_zero, ig_summed_not_averaged,
               ig_left_riemann]),
    CheckCase(ch08.check_probe_accuracy, probe_accuracy,
              [probe_trained_on_everything, probe_training_accuracy, probe_returns_tensor, probe_counts_correct,
               probe_first_rows_are_training, probe_standardised_with_all_rows]),
]

test_check_passes_on_solution, test_check_fails_on_stub, test_check_fails_on_wrong_answer = make_tests(CASES)


@pytest.mark.parametrize("answer", [probe_sklearn, probe_standardised_with_all_rows_then_train_probe])
def test_probe_check_passes_on_equivalent_answers(answer, capsys):
    pytest.importorskip("sklearn")
    ch08.check_probe_accuracy(answer)
    assert "✔" in capsys.readouterr().out


def test_probe_check_fails_on_sklearn_scaler_fitted_on_all_rows():
    pytest.importorskip("sklearn")
    with pytest.raises(CheckFailed):
        ch08.check_probe_accuracy(probe_sklearn_scaler_on_all_rows)
