"""digits-sklearn: model and data helpers shared by the ServerApp and the ClientApp."""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

N_CLASSES = 10
N_FEATURES = 64
SEED = 42


def _all_data():
    x, y = load_digits(return_X_y=True)  # bundled with scikit-learn: no download
    return x / 16.0, y


def load_data(partition_id: int, num_partitions: int):
    """This node's IID share of the digits, split 80/20 into train and test."""
    x, y = _all_data()
    order = np.random.default_rng(SEED).permutation(len(y))
    mine = np.array_split(order, num_partitions)[partition_id]
    return train_test_split(x[mine], y[mine], test_size=0.2, random_state=SEED)


def load_centralized_test():
    """A held-out test set for the server's evaluation of the global model."""
    x, y = _all_data()
    _, x_test, _, y_test = train_test_split(x, y, test_size=0.2, random_state=SEED,
                                            stratify=y)
    return x_test, y_test


def get_model(penalty: str, local_epochs: int) -> LogisticRegression:
    return LogisticRegression(penalty=penalty, max_iter=local_epochs, warm_start=True)


def get_model_params(model: LogisticRegression) -> list:
    if model.fit_intercept:
        return [model.coef_, model.intercept_]
    return [model.coef_]


def set_model_params(model: LogisticRegression, params: list) -> LogisticRegression:
    model.coef_ = params[0]
    if model.fit_intercept:
        model.intercept_ = params[1]
    return model


def set_initial_params(model: LogisticRegression) -> None:
    """scikit-learn only creates the parameters on fit(): start them at zero."""
    model.classes_ = np.arange(N_CLASSES)
    model.coef_ = np.zeros((N_CLASSES, N_FEATURES))
    if model.fit_intercept:
        model.intercept_ = np.zeros((N_CLASSES,))
