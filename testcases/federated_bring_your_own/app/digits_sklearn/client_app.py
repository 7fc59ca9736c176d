"""digits-sklearn: a Flower ClientApp."""

import warnings

from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from sklearn.metrics import accuracy_score, log_loss

from digits_sklearn.task import (
    get_model,
    get_model_params,
    load_data,
    set_initial_params,
    set_model_params,
)

app = ClientApp()


def _model_and_data(msg: Message, context: Context):
    model = get_model(context.run_config["penalty"], context.run_config["local-epochs"])
    set_initial_params(model)
    set_model_params(model, msg.content["arrays"].to_numpy_ndarrays())
    partition_id = context.node_config["partition-id"]
    num_partitions = context.node_config["num-partitions"]
    return model, load_data(partition_id, num_partitions)


@app.train()
def train(msg: Message, context: Context):
    """Train the model on local data."""
    model, (x_train, _, y_train, _) = _model_and_data(msg, context)
    with warnings.catch_warnings():  # max_iter is small on purpose: one local epoch
        warnings.simplefilter("ignore")
        model.fit(x_train, y_train)
    metrics = {
        "train_logloss": log_loss(y_train, model.predict_proba(x_train), labels=range(10)),
        "num-examples": len(x_train),
    }
    content = RecordDict(
        {"arrays": ArrayRecord(get_model_params(model)), "metrics": MetricRecord(metrics)}
    )
    return Message(content=content, reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context):
    """Evaluate the global model on local test data."""
    model, (_, x_test, _, y_test) = _model_and_data(msg, context)
    metrics = {
        "eval_logloss": log_loss(y_test, model.predict_proba(x_test), labels=range(10)),
        "eval_accuracy": accuracy_score(y_test, model.predict(x_test)),
        "num-examples": len(x_test),
    }
    return Message(content=RecordDict({"metrics": MetricRecord(metrics)}), reply_to=msg)
