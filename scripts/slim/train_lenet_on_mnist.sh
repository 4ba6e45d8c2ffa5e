#!/bin/bash
# TF-Slim's research/slim/scripts/train_lenet_on_mnist.sh,
# run with this project's scripts. Its flags are TF-Slim's; what changed:
# - paths, the step count and the batch size come from the environment, defaulting
#   to TF-Slim's values; `python` is $PYTHON (python3) and the scripts' full paths;
# - the evaluation's --eval_dir=${TRAIN_DIR} (TF-Slim's) writes to ${TRAIN_DIR}/eval,
#   beside the checkpoints, so TensorBoard shows training and evaluation side by side.
#
# Usage: bash scripts/slim/train_lenet_on_mnist.sh
#   (TRAIN_DIR=... DATASET_DIR=... MAX_STEPS=... BATCH_SIZE=... PYTHON=...)
set -e

SLIM_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON=${PYTHON:-python3}

# Where the checkpoint and logs will be saved to.
TRAIN_DIR=${TRAIN_DIR:-/tmp/lenet-model}

# Where the dataset is saved to.
DATASET_DIR=${DATASET_DIR:-/tmp/mnist}

MAX_STEPS=${MAX_STEPS:-20000}
BATCH_SIZE=${BATCH_SIZE:-50}

# Download the dataset
"${PYTHON}" "${SLIM_DIR}/download_and_convert_data.py" \
  --dataset_name=mnist \
  --dataset_dir="${DATASET_DIR}"

# Run training.
"${PYTHON}" "${SLIM_DIR}/train_image_classifier.py" \
  --train_dir="${TRAIN_DIR}" \
  --dataset_name=mnist \
  --dataset_split_name=train \
  --dataset_dir="${DATASET_DIR}" \
  --model_name=lenet \
  --preprocessing_name=lenet \
  --max_number_of_steps="${MAX_STEPS}" \
  --batch_size="${BATCH_SIZE}" \
  --learning_rate=0.01 \
  --save_interval_secs=60 \
  --save_summaries_secs=60 \
  --log_every_n_steps=100 \
  --optimizer=sgd \
  --learning_rate_decay_type=fixed \
  --weight_decay=0

# Run evaluation.
"${PYTHON}" "${SLIM_DIR}/eval_image_classifier.py" \
  --checkpoint_path="${TRAIN_DIR}" \
  --eval_dir="${TRAIN_DIR}" \
  --dataset_name=mnist \
  --dataset_split_name=test \
  --dataset_dir="${DATASET_DIR}" \
  --model_name=lenet
