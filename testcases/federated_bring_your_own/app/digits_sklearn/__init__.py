"""digits-sklearn: federated logistic regression on scikit-learn's digits."""
