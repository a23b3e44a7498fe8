"""Using a trained model: the bundle format, its backends, the loaded model, long recordings,
building the bundled model and the demo."""
