"""digits-sklearn: a Flower ServerApp."""

from flwr.app import ArrayRecord, Context, MetricRecord
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg
from sklearn.metrics import accuracy_score, log_loss

from digits_sklearn.task import (
    get_model,
    get_model_params,
    load_centralized_test,
    set_initial_params,
    set_model_params,
)

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    num_rounds = context.run_config["num-server-rounds"]
    penalty = context.run_config["penalty"]
    local_epochs = context.run_config["local-epochs"]
    min_nodes = context.run_config["min-nodes"]

    model = get_model(penalty, local_epochs)
    set_initial_params(model)
    x_test, y_test = load_centralized_test()

    def global_evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        set_model_params(model, arrays.to_numpy_ndarrays())
        return MetricRecord({
            "accuracy": accuracy_score(y_test, model.predict(x_test)),
            "logloss": log_loss(y_test, model.predict_proba(x_test), labels=range(10)),
        })

    strategy = FedAvg(
        fraction_train=context.run_config["fraction-train"],
        min_train_nodes=min_nodes,
        min_evaluate_nodes=min_nodes,
        min_available_nodes=min_nodes,
    )
    result = strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord(get_model_params(model)),
        num_rounds=num_rounds,
        evaluate_fn=global_evaluate,
    )
    print("Final server-side evaluation:", result.evaluate_metrics_serverapp.get(num_rounds))
