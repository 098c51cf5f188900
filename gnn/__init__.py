"""Graph networks: the flat graph batch, scatter aggregation, GN blocks, encode-process-decode, neighbour search."""
from gnn.blocks import EdgeConv, GraphNetwork, InteractionNetwork
from gnn.encode_process_decode import EncodeProcessDecode, EncodeProcessDecodeConfig
from gnn.graph import GraphBatch
from gnn.mlp import MLP
from gnn.neighbours import knn_graph, radius_graph

__all__ = ["GraphBatch", "MLP", "InteractionNetwork", "GraphNetwork", "EdgeConv", "EncodeProcessDecode",
           "EncodeProcessDecodeConfig", "radius_graph", "knn_graph"]
