"""Graph networks: the flat graph batch, scatter aggregation, GN blocks, encode-process-decode, neighbour search."""
from gnn.blocks import (
                        EdgeBlock,
                        EdgeConv,
                        GlobalBlock,
                        GraphNetwork,
                        InteractionNetwork,
                        MultiEdgeInteractionNetwork,
                        NodeBlock,
                        knn_rewire,
)
from gnn.encode_process_decode import EncodeProcessDecode, EncodeProcessDecodeConfig
from gnn.graph import GraphBatch
from gnn.interop import from_pyg, to_pyg
from gnn.mlp import MLP
from gnn.neighbours import knn_graph, radius_graph
from gnn.normaliser import OnlineNormaliser
from gnn.scatter import scatter, scatter_count, scatter_max, scatter_mean, scatter_min, scatter_softmax, scatter_sum

__all__ = ["GraphBatch", "MLP", "EdgeBlock", "NodeBlock", "GlobalBlock", "InteractionNetwork", "GraphNetwork",
           "MultiEdgeInteractionNetwork", "EdgeConv", "knn_rewire", "EncodeProcessDecode",
           "EncodeProcessDecodeConfig", "OnlineNormaliser", "radius_graph", "knn_graph", "scatter", "scatter_sum",
           "scatter_mean", "scatter_max", "scatter_min", "scatter_softmax", "scatter_count", "from_pyg", "to_pyg"]
