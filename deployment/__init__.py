"""Device placement and tf.distribute strategies (TF-Slim's model_deploy)."""
