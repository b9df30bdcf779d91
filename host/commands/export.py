"""`dpfm export`: a checkpoint's network as ONNX, for the tools people already use (`host.onnx_mlp`).

The float model holds the weights as float32. `--quantized` stores a fixed-point run's weights as integers
with their exact scale (DequantizeLinear), so the file carries the very weights the core trained.
"""

from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.files import atomic_path, check_writable


def register(subparsers):
    p = subparsers.add_parser("export", help="write a checkpoint's network as ONNX", description=__doc__)
    p.add_argument("checkpoint", help="a checkpoint written by 'dpfm train --save'")
    p.add_argument("--onnx", required=True, metavar="PATH", help="the ONNX file to write")
    p.add_argument("--quantized", action="store_true",
                   help="store the weights of a fixed-point run as integers in its w format")
    p.set_defaults(func=run)


def run(args) -> int:
    import onnx

    from dpfm.golden.contract.net import unflatten
    from dpfm.host.commands.predict import read_single_k
    from dpfm.host.onnx_mlp import to_onnx

    check_writable(args.onnx)
    checkpoint = read_single_k(args.checkpoint)
    if args.quantized and checkpoint.fixed is None:
        raise DpfmError(f"checkpoint {args.checkpoint} is a float run: its weights have no fixed-point format",
                        "export it without --quantized, or train with --fixed")
    layers = unflatten(checkpoint.spec, checkpoint.arrays["weights"][0])
    model = to_onnx(checkpoint.spec, layers, checkpoint.fixed.w if args.quantized else None)
    with atomic_path(args.onnx) as tmp:
        onnx.save(model, tmp)
    kind = f"weights as {checkpoint.fixed.w} integers" if args.quantized else "float32 weights"
    print(f"wrote {args.onnx}: MLP {','.join(map(str, checkpoint.spec.sizes))} "
          f"({','.join(checkpoint.spec.activations)}), {kind}")
    return 0
