"""djangochannelsrestframework: a GenericAsyncAPIConsumer with ``@model_observer`` and a
``subscribe_to_item_activity`` action, as its documentation shows."""
