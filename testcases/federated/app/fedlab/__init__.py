"""The Flower app of testcases/federated: ServerApp, ClientApp and their pure helpers."""
