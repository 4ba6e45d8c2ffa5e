#!/usr/bin/env bash
# The main job end to end, offline, on the MNIST sample that ships in the repo
# (first 2,000 training and 500 test images, official idx .gz format):
# convert -> train LeNet (TF-Slim's train_lenet_on_mnist.sh recipe, shortened) -> evaluate.
# Usage: bash scripts/quickstart.sh [WORK_DIR]   (default: a new temporary directory)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-$(mktemp -d -t slim_quickstart.XXXXXX)}
STEPS=${QUICKSTART_STEPS:-400}
echo "quickstart: working in $WORK"

python3 download_and_convert_data.py \
  --dataset_name=mnist --source=datasets/sample/mnist --dataset_dir="$WORK/mnist"

python3 train_image_classifier.py \
  --train_dir="$WORK/train" --dataset_name=mnist --dataset_split_name=train \
  --dataset_dir="$WORK/mnist" --model_name=lenet --preprocessing_name=lenet \
  --max_number_of_steps="$STEPS" --batch_size=50 --learning_rate=0.01 \
  --save_interval_secs=60 --save_summaries_secs=60 --log_every_n_steps=100 \
  --optimizer=sgd --learning_rate_decay_type=fixed --weight_decay=0 --random_seed=0

python3 eval_image_classifier.py \
  --checkpoint_path="$WORK/train" --eval_dir="$WORK/eval" --dataset_name=mnist \
  --dataset_split_name=test --dataset_dir="$WORK/mnist" --model_name=lenet

echo "quickstart: done. Checkpoints in $WORK/train, evaluation in $WORK/eval"
echo "quickstart: tensorboard --logdir=$WORK"
