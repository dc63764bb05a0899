"""What you run on a trained or untrained model: parameter tables (`summary`), multiply-adds (`flops`),
activation and gradient statistics (`diagnostics`), saliency / guided backprop / Grad-CAM (`visualize`),
snapshot and prediction ensembles (`ensemble`), and the autodiff chapter's checks (`autodiff`: jvp vs vjp on the
notes' graph, finite-difference gradient checks)."""
