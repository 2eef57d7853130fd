"""Finding the modules behind an encode function (so they can be put in eval mode)."""

import functools

import torch

from captum_bilinear._utils.callables import modules_behind

ENCODER = torch.nn.Linear(3, 2)
HEAD = torch.nn.Linear(2, 2)
NOT_A_MODULE = {"encoder": torch.nn.Linear(3, 2)}


def _helper(x):
    return HEAD(x)


def encode_by_global(x):
    return ENCODER(x)


def encode_through_a_helper(x):
    return _helper(ENCODER(x))


def encode_in_a_lambda(x):
    return (lambda y: ENCODER(y))(x)


def encode_through_a_dict(x):
    return NOT_A_MODULE["encoder"](x)


def identities(modules):
    return [id(m) for m in modules]


def test_module_level_names_are_found():
    assert identities(modules_behind(encode_by_global)) == [id(ENCODER)]
    assert set(identities(modules_behind(encode_through_a_helper))) == {id(ENCODER), id(HEAD)}
    assert identities(modules_behind(encode_in_a_lambda)) == [id(ENCODER)]


def test_bound_methods_partials_and_closures_as_before():
    local = torch.nn.Linear(3, 2)
    assert identities(modules_behind(local.forward)) == [id(local)]
    assert identities(modules_behind(functools.partial(torch.nn.functional.linear, weight=local.weight))) == []
    assert identities(modules_behind(functools.partial(lambda m, x: m(x), local))) == [id(local)]
    assert identities(modules_behind(lambda x: local(x))) == [id(local)]


def test_modules_behind_other_objects_are_not_found():
    assert modules_behind(encode_through_a_dict) == []


def test_recursive_functions_terminate():
    def recursive(x, depth=0):
        return x if depth else recursive(ENCODER(x), depth + 1)

    assert id(ENCODER) in identities(modules_behind(recursive))
