//! Adam (Kingma & Ba 2015) with decoupled weight decay (AdamW, Loshchilov & Hutter 2019), over
//! one flat parameter vector. Its state can be saved and restored exactly, so a resumed training
//! run continues bit for bit.

pub struct Adam {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    /// Decoupled: `p -= lr · weight_decay · p` before the Adam update.
    pub weight_decay: f32,
    m: Vec<f32>,
    v: Vec<f32>,
    t: i32,
}

impl Adam {
    /// β1 = 0.9, β2 = 0.999, ε = 1e-8, no weight decay: the usual Adam.
    pub fn new(len: usize, lr: f32) -> Self {
        Self {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            weight_decay: 0.0,
            m: vec![0.0; len],
            v: vec![0.0; len],
            t: 0,
        }
    }

    pub fn step(&mut self, params: &mut [f32], gradient: &[f32]) {
        assert_eq!(params.len(), self.m.len());
        assert_eq!(gradient.len(), self.m.len());
        let (b1, b2) = (self.beta1, self.beta2);
        self.t += 1;
        let (c1, c2) = (1.0 - b1.powi(self.t), 1.0 - b2.powi(self.t));
        let decay = 1.0 - self.lr * self.weight_decay;
        for (((p, &g), m), v) in params
            .iter_mut()
            .zip(gradient)
            .zip(&mut self.m)
            .zip(&mut self.v)
        {
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            *p = *p * decay - self.lr * (*m / c1) / ((*v / c2).sqrt() + 1e-8);
        }
    }

    /// The moments and the step count, for a checkpoint.
    pub fn state(&self) -> (&[f32], &[f32], i32) {
        (&self.m, &self.v, self.t)
    }

    /// Restores [`Self::state`]; the moments must have the parameters' length.
    pub fn restore(&mut self, m: Vec<f32>, v: Vec<f32>, t: i32) {
        assert_eq!(m.len(), self.m.len());
        assert_eq!(v.len(), self.v.len());
        (self.m, self.v, self.t) = (m, v, t);
    }
}
