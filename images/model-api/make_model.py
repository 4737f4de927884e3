"""Build the model-api lab's model at image build time: model.onnx, a linear model
y = W x + b from 4 inputs to 2 outputs with fixed weights, so every answer is checkable:

    y0 = 1*x0 + 2*x1 + 3*x2 + 4*x3 + 0.5    ([1, 2, 3, 4] -> 30.5)
    y1 = x0 - x1 + x2 - x3 - 1              ([1, 2, 3, 4] -> -3)

Input "input" FP32 [N, 4], output "output" FP32 [N, 2] (N: any batch size).
Usage: python make_model.py OUT.onnx
"""

from __future__ import annotations

import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# W is stored transposed ([4, 2]) so that y = x @ W^T + b is one MatMul and one Add.
WEIGHTS = np.array([[1, 2, 3, 4], [1, -1, 1, -1]], dtype=np.float32)
BIAS = np.array([0.5, -1.0], dtype=np.float32)
MODEL_VERSION = "1"
OPSET = 17
IR_VERSION = 8  # read by every onnxruntime since 1.10


def build() -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes=[
            helper.make_node("MatMul", ["input", "weights_t"], ["xw"]),
            helper.make_node("Add", ["xw", "bias"], ["output"]),
        ],
        name="linear",
        inputs=[helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 4])],
        outputs=[helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 2])],
        initializer=[
            numpy_helper.from_array(WEIGHTS.T.copy(), name="weights_t"),
            numpy_helper.from_array(BIAS, name="bias"),
        ],
    )
    model = helper.make_model(
        graph,
        producer_name="roadlab-model-api",
        opset_imports=[helper.make_opsetid("", OPSET)],
    )
    model.ir_version = IR_VERSION
    model.model_version = int(MODEL_VERSION)
    helper.set_model_props(model, {"model_version": MODEL_VERSION})
    onnx.checker.check_model(model)
    return model


if __name__ == "__main__":
    onnx.save(build(), sys.argv[1] if len(sys.argv) > 1 else "model.onnx")
