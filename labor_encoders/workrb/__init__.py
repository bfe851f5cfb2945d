"""The bridge to WorkRB, the field's benchmark harness: ``models`` wraps our models in WorkRB's model interface,
``tasks`` builds its tasks from local files or its own datasets. ``labor-encoders evaluate workrb`` drives them."""
