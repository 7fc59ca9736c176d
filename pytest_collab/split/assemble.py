"""Turn a cut graph into an ``ExportedProgram`` directly, without tracing the network again.

The head and tail graphs hold ATen ops whose nodes still carry the fake tensors and
symbolic batch of the capture, so the program ``torch.export`` would produce can be
assembled from them: parameters and buffers become lifted inputs, the batch symbol keeps
the capture's range. That costs milliseconds where ``torch.export.export`` re-traces the
whole network (seconds per point). Only for graphs captured by ``torch.export``; export.py
falls back to re-tracing when this raises.
"""
from __future__ import annotations

from typing import Any


def assemble(gm: Any, range_constraints: dict[Any, Any]) -> Any:
    """An ``ExportedProgram`` equivalent to ``gm`` (positional tensor inputs, tensor outputs)."""
    import torch
    import torch.utils._pytree as pytree
    from torch.export.exported_program import ExportedProgram, ModuleCallEntry, ModuleCallSignature
    from torch.export.graph_signature import (
        ExportGraphSignature,
        InputKind,
        InputSpec,
        OutputKind,
        OutputSpec,
        TensorArgument,
    )

    params = dict(gm.named_parameters())
    buffers = dict(gm.named_buffers())
    graph = torch.fx.Graph()
    env: dict[Any, Any] = {}
    specs: list[Any] = []
    state: dict[str, Any] = {}
    constants: dict[str, Any] = {}
    attrs = [n for n in gm.graph.nodes if n.op == "get_attr"]
    users = [n for n in gm.graph.nodes if n.op == "placeholder"]
    for n in attrs:  # lifted inputs come first, as torch.export orders them
        target = str(n.target)
        ph = graph.placeholder("p_" + target.replace(".", "_"))
        ph.meta = dict(n.meta)
        env[n] = ph
        if target in params:
            specs.append(InputSpec(InputKind.PARAMETER, TensorArgument(ph.name), target))
            state[target] = params[target]
        elif target in buffers:
            specs.append(InputSpec(InputKind.BUFFER, TensorArgument(ph.name), target, persistent=True))
            state[target] = buffers[target]
        else:
            value = getattr(gm, target) if "." not in target else gm.get_submodule(target.rsplit(".", 1)[0])
            value = getattr(value, target.rsplit(".", 1)[-1]) if "." in target else value
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"attribute {target} is a {type(value).__name__}, not a tensor")
            specs.append(InputSpec(InputKind.CONSTANT_TENSOR, TensorArgument(ph.name), target))
            constants[target] = value
    for n in users:
        ph = graph.placeholder(n.name)
        ph.meta = dict(n.meta)
        env[n] = ph
        specs.append(InputSpec(InputKind.USER_INPUT, TensorArgument(ph.name), None))
    result: Any = None
    for n in gm.graph.nodes:
        if n.op == "output":
            result = n.args[0]
        elif n.op not in ("placeholder", "get_attr"):
            env[n] = graph.node_copy(n, lambda a: env[a])
    flat = list(result) if isinstance(result, (tuple, list)) else [result]
    graph.output(tuple(env[a] for a in flat))
    out_specs = [OutputSpec(OutputKind.USER_OUTPUT, TensorArgument(env[a].name), None) for a in flat]
    in_spec = pytree.tree_flatten((tuple(range(len(users))), {}))[1]
    out_spec = pytree.tree_flatten(tuple(flat) if isinstance(result, (tuple, list)) else 0)[1]
    calls = [ModuleCallEntry("", ModuleCallSignature(inputs=[], outputs=[], in_spec=in_spec, out_spec=out_spec))]
    root = torch.fx.GraphModule(torch.nn.Module(), graph)
    return ExportedProgram(root=root, graph=graph, graph_signature=ExportGraphSignature(specs, out_specs),
                           state_dict=state, range_constraints=dict(range_constraints), module_call_graph=calls,
                           constants=constants)
